"""The sandbox keeps no table: runs and image sets are the pipeline's (pipeline.models)."""
