"""Embedding models' decisions: the gallery index, the retriever, the image embedder."""
