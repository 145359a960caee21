"""`make bench`: lint speed and webhook ingest throughput, measured in one run."""
