raise ImportError("the decoy 'common' package was imported: xpnet.book should answer 'common'")
