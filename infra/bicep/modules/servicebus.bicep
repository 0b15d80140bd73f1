// Service Bus (Standard: duplicate detection needs Standard or Premium): the fine-tuning queues.
// Entra ID only (disableLocalAuth); the sender/receiver roles are in modules/identity.bicep.

@description('Namespace name (6-50 letters, digits and hyphens, starting with a letter).')
param namespaceName string

param location string
param tags object = {}

@description('Enabled or Disabled; main.bicep refuses Disabled until private endpoints exist (README).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Deliveries before a message is dead-lettered (= QUEUE_MAX_DELIVERY_COUNT).')
@minValue(1)
param maxDeliveryCount int

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
  }
}

// Every message carries a deterministic id; duplicate detection drops the repeats. A failed delivery
// is abandoned and redelivered until maxDeliveryCount, then dead-lettered (docs/functions.md).
resource fineTuneJobsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: serviceBus
  name: 'fine-tune-jobs'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    lockDuration: 'PT5M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
  }
}

resource fineTuneDoneQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: serviceBus
  name: 'fine-tune-done'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    lockDuration: 'PT5M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
  }
}

output name string = serviceBus.name
output fullyQualifiedNamespace string = '${serviceBus.name}.servicebus.windows.net'
