# The old module's user, listed, and defined by the configuration as usual.
{
  services.staging-vm.enable = true;
  services.staging-vm.users = [ "gortium" ];
  users.users.gortium = {
    isNormalUser = true;
    group = "users";
    extraGroups = [ "wheel" ];
  };
}
