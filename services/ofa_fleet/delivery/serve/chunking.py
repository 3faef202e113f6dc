"""How many model bytes one ReadModel message carries, chosen by measurement.

bench/delivery_fleet.py, 1,000 concurrent model download streams of a 3.5 MB model on loopback
(2 cores, two runs): 64 KiB chunks gave 179-183 MB/s, 256 KiB 278-297 MB/s and 1 MiB
312-392 MB/s. 256 KiB takes most of the gain, while a device holds a quarter of the
bytes per message that 1 MiB would make it hold. The import is light on purpose: the CLI
reads the default while building its parser.
"""

CHUNK_BYTES = 256 * 1024
