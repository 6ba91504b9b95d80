# nRF52832: GPIO input with an external interrupt. P0.13 (pull-up) ->
# GPIOTE channel 0 (event mode, both edges), INTENSET.IN0, NVIC GPIOTE
# (IRQ 6); the handler tests and clears EVENTS_IN[0] (write 0) and reads
# P0 IN. EVENTS press and release the button, then press it again after
# the firmware disabled the interrupt with INTENCLR: that edge must not
# interrupt.
# FW_SVD: Nordic/nrf52.svd
# EVENTS: events.jsonl
# INPUT:
# EXPECT: gpiote ready\r\nbutton 0\r\nbutton 1\r\nmasked\r\nlevel 0\r\nirqs 2\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x00000000
FW_FLASH_SIZE := 512K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
