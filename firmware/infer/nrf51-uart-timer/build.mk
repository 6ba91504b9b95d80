# nRF51822: HFCLK start (EVENTS_HFCLKSTARTED), UART0 polled output and line
# input (EVENTS_TXDRDY/RXDRDY), TIMER0 compare interrupts (IRQ 8).
# FW_SVD: Nordic/nrf51.svd
# INPUT: nrf\r
# EXPECT: clock ok\r\n> echo: nrf\r\nticks 3\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m0
FW_FLASH := 0x00000000
FW_FLASH_SIZE := 256K
FW_RAM := 0x20000000
FW_RAM_SIZE := 16K
