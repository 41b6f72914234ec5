"""Using a trained checkpoint: loading it safely, predicting, exporting."""
