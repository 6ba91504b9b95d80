# STM32F103: GPIO input with an external interrupt. PA0 -> AFIO EXTICR1 ->
# EXTI line 0 (both edges, IMR), NVIC EXTI0 (IRQ 6); the handler tests and
# clears PR0 (write 1) and reads GPIOA IDR. EVENTS (machineserver run
# --events) press and release the button, then press it again after the
# firmware masked the line: that edge must not interrupt.
# FW_SVD: STMicro/STM32F103xx.svd
# EVENTS: events.jsonl
# INPUT:
# EXPECT: exti ready\r\nbutton 1\r\nbutton 0\r\nmasked\r\nlevel 1\r\nirqs 2\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m3
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 64K
FW_RAM := 0x20000000
FW_RAM_SIZE := 20K
