# One end only: an assertion says to set both or neither.
{
  services.staging-vm.enable = true;
  services.staging-vm.network.dhcpStart = "192.168.150.100";
}
