"""The book's ``dataset`` package, answered by xpnet (see :mod:`xpnet.book.finder`)."""
