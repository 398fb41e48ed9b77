"""ludus jobs: generate, train, evaluate and the pipeline, configured by environment variables
and meeting only in object storage."""
