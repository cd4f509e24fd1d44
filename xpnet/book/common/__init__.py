"""The book's ``common`` package, answered by xpnet (see :mod:`xpnet.book.finder`)."""
