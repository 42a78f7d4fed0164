# A misspelt option: the declarations are strict, so this must not evaluate.
{
  services.staging-vm.enable = true;
  services.staging-vm.network.dhcpStrat = "192.168.150.100";
}
