# STM32F407: SPI1 full-duplex transfer (TXE/RXNE/BSY), I2C1 master write
# (SB/ADDR/TXE/BTF), ADC1 software-started conversion (EOC), on USART2.
# FW_SVD: STMicro/STM32F407.svd
# INPUT:
# EXPECT: f4 start\r\nspi ok\r\ni2c ok\r\nadc ok\r\nPASS\r\n
FW_CPU := -mcpu=cortex-m4 -mfloat-abi=soft
FW_FLASH := 0x08000000
FW_FLASH_SIZE := 128K
FW_RAM := 0x20000000
FW_RAM_SIZE := 64K
