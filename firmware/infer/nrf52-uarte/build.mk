# nRF52832: UARTE0 (EasyDMA) output as Zephyr's uart_nrfx_uarte poll_out
# sends it: one byte per DMA transfer (TXD.PTR/TXD.MAXCNT, TASKS_STARTTX,
# wait for EVENTS_ENDTX), then a whole line in one transfer. No byte ever
# passes through a data register.
# FW_SVD: Nordic/nrf52.svd
# INPUT:
# EXPECT: uarte ready\r\nline by dma\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x00000000
FW_FLASH_SIZE := 512K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
