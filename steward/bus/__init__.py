"""Kafka, written once. Only this package and the collector import kafka-python."""
