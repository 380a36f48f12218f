"""The resource's spec as a model, and the Kubernetes objects it renders to (pure)."""
