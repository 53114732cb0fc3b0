"""berth's command line: `berth deploy web --wait` and friends, over the SigV4-signed REST API."""
