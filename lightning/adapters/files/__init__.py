"""Local files: the dataset writer's work folders (and its helper process)."""
