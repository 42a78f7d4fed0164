# The module enabled and nothing else set.
{ services.staging-vm.enable = true; }
