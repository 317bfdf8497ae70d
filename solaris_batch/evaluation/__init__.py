"""Knowledge-transfer evaluation: what the precomputed embeddings are worth to the online ranker."""
