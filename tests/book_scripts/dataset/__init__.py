raise ImportError("the test's decoy 'dataset' package was imported: xpnet.book should answer 'dataset'")
