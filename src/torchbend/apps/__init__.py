"""Front ends over the library: the command line, the demo, the studio, controllers, renders and grids."""
