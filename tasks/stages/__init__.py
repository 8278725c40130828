"""The stages of the chain, each a plain function or ``Stage`` over a batch: reading (``read``,
``formats/``, ``limits``), ``repair``, ``paragraphs``, ``boilerplate`` (rule packs ``rules/``,
``rulematch``; the line classifier ``linefeatures`` + ``linematrix``, ``models/``, ``lang/``),
``language`` (``fastlangdetect``), and the MinHash keys and duplicates (``sketch``, ``minhash``,
``dedup``)."""
