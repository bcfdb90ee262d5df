"""Planning, in the ``bench`` parent process before any run starts: what the user asked for becomes a list
of fully resolved ``RunSpec``s (``plan``), the source runs of transfer methods are resolved (``sources``),
and the whole grid is checked against the model's shapes and the data files (``preflight``). Nothing here
trains."""
