"""Domain logic with no I/O: DNS records, addresses and other pure rules of the mail world."""
