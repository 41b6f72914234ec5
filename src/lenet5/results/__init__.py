"""What a run leaves behind: pictures, W&B logging, and the report over a sweep's runs."""
