# STM32F407: USART2 driven by its interrupt only (IRQ 38). Output is queued
# and sent by the handler while TXE and TXEIE are set (no polled output
# anywhere, the first byte included); input arrives through RXNEIE.
# FW_SVD: STMicro/STM32F407.svd
# INPUT: irq\r
# EXPECT: tx by interrupt\r\n> got: irq\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 512K
FW_RAM := 0x20000000
FW_RAM_SIZE := 128K
