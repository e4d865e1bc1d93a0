"""iPXE's script language: parsing, expansion, option parsing, the interpreter, commands."""
