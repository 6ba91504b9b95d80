FW_CPU := -mcpu=cortex-m0plus
