"""sysexits(3) codes used by ``mailsuite-admin`` (and by ``deliver`` as an LDA)."""

OK = 0
USAGE = 64  # EX_USAGE: bad command line
DATAERR = 65  # EX_DATAERR: bad input data
NOINPUT = 66  # EX_NOINPUT: input file missing
NOUSER = 67  # EX_NOUSER: unknown address
SOFTWARE = 70  # EX_SOFTWARE: internal error
CANTCREAT = 73  # EX_CANTCREAT
IOERR = 74  # EX_IOERR
TEMPFAIL = 75  # EX_TEMPFAIL: try again later
NOPERM = 77  # EX_NOPERM
CONFIG = 78  # EX_CONFIG: configuration error
