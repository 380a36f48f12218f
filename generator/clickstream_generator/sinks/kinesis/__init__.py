"""The Kinesis Data Streams sink; the only part of the generator that imports boto3."""
