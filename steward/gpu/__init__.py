"""GPU partitions: DCGM field names and units, the MIG profile catalogue, NVML sampling.

Nothing here talks to Kafka or HTTP; the collector and the processors build on it.
"""
