"""The contract every layer shares, importing nothing else of the project: run identity and
feed time (`identity`), the error root (`errors`) and the Arrow schemas of the files and
frames passed between steps (`schemas`). Change a name here and every step follows."""
