# STM32F103: TIM2 update interrupts (IRQ 28) counted by the handler; USART1 output.
# FW_SVD: STMicro/STM32F103xx.svd
# INPUT:
# EXPECT: timer start\r\nticks 3\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m3
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 64K
FW_RAM := 0x20000000
FW_RAM_SIZE := 20K
