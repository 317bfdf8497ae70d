"""The reference foundation model, its input features, checkpoint IO and training."""
