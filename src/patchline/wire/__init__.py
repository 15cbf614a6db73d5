"""Wire formats shared by the publishing side, the server and the device agent."""
