"""Exporting a bended module: TorchScript (`script`), nn~ (`export_nntilde`) and torch.export (`export`)."""
