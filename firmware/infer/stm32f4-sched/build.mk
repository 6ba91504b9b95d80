# STM32F407: two tasks on PSP switched by PendSV, paced by SysTick
# interrupts (both are core peripherals: the engine's, not inferred); the
# console USART2 is inferred. The test shell has no SysTick, so this image
# runs only on the rehost engine.
# FW_SVD: STMicro/STM32F407.svd
# ENGINE: only
# INPUT:
# EXPECT: sched\r\nA0\r\nB0\r\nA1\r\nB1\r\nA2\r\nB2\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 128K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
