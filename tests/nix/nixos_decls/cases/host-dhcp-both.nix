# Both ends of the range set: written as they are.
{
  services.staging-vm.enable = true;
  services.staging-vm.network = {
    subnet = "10.77.0.0/24";
    dhcpStart = "10.77.0.100";
    dhcpEnd = "10.77.0.199";
  };
}
