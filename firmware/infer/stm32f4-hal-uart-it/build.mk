# STM32F407: USART2 driven the way STM32Cube HAL drives it in interrupt
# mode: a handle in RAM (Instance, buffer, counts, states), one IRQ
# handler that reads SR and CR1 once and dispatches (errors, RXNE, TXE,
# TC); transmit ends with a transmission-complete interrupt (TXEIE off,
# TCIE on) that makes the handle ready for the next transmit. No polled
# output anywhere.
# FW_SVD: STMicro/STM32F407.svd
# INPUT: hal\r
# EXPECT: hal it ready\r\n> got: hal\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 512K
FW_RAM := 0x20000000
FW_RAM_SIZE := 128K
