"""The live decoding loop and what it owns: the session, its ring buffer, decoder, sinks and scoring."""
