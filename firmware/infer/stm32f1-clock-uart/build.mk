# STM32F103: clock tree start-up (HSE, PLL, SW/SWS read-back), USART1 polled
# output and line input.
# FW_SVD: STMicro/STM32F103xx.svd
# INPUT: hi there\r
# EXPECT: clock ok\r\n> echo: hi there\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m3
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 64K
FW_RAM := 0x20000000
FW_RAM_SIZE := 20K
