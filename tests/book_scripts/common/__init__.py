raise ImportError("the test's decoy 'common' package was imported: xpnet.book should answer 'common'")
