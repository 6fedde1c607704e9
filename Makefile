include Makefile.apxs
