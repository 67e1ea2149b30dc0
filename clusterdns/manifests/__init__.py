"""Files in: the manifests directory walked, read into documents, and watched for changes."""
