# ARM CMSDK (Cortex-M3 sample system): UART0 at 0x40004000, TX waits for
# TXFULL to clear, RX waits for RXFULL; a second family beside ST and Nordic.
# FW_SVD: ARM_SAMPLE/CMSDK_CM3.svd
# INPUT: cm3\r
# EXPECT: cmsdk\r\n> echo: cm3\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m3
FW_FLASH := 0x00000000
FW_FLASH_SIZE := 256K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
