raise ImportError("the decoy 'dataset' package was imported: xpnet.book should answer 'dataset'")
