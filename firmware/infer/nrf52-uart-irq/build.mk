# nRF52832: UART0 receive by interrupt (RXDRDY, IRQ 2) into a ring buffer,
# polled output; the main loop sleeps in WFI until a line arrived.
# FW_SVD: Nordic/nrf52.svd
# INPUT: ping\r
# EXPECT: ready\r\ngot: ping\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x00000000
FW_FLASH_SIZE := 512K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
