// Cosmos DB (serverless): database `agents` with the loop's containers and the change feed's leases.
// Entra ID only (disableLocalAuth); the data-plane role assignments are in modules/identity.bicep.

@description('Account name (3-44 lowercase letters, digits and hyphens).')
param accountName string

param location string
param tags object = {}

@description('Enabled or Disabled; main.bicep refuses Disabled until private endpoints exist (README).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('The database the app and the change-feed trigger use (COSMOS_DATABASE).')
param databaseName string = 'agents'

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: publicNetworkAccess
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: cosmos
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

// Child resources are declared one by one (no loop, no nesting): the offline tests parse this file
// with pycep-parser, which keeps only the last nested child of a resource.
resource episodesContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'rl_episodes'
  properties: {
    resource: {
      id: 'rl_episodes'
      partitionKey: {
        paths: ['/agent_id']
        kind: 'Hash'
      }
    }
  }
}

resource datasetsContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'rl_datasets'
  properties: {
    resource: {
      id: 'rl_datasets'
      partitionKey: {
        paths: ['/agent_id']
        kind: 'Hash'
      }
    }
  }
}

resource trainingRunsContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'rl_training_runs'
  properties: {
    resource: {
      id: 'rl_training_runs'
      partitionKey: {
        paths: ['/agent_id']
        kind: 'Hash'
      }
    }
  }
}

resource modelsContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'rl_models'
  properties: {
    resource: {
      id: 'rl_models'
      partitionKey: {
        paths: ['/agent_id']
        kind: 'Hash'
      }
    }
  }
}

// The agents' golden sets (known-right answers): the gate's and evaluate --golden's ground truth.
resource goldenContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'golden'
  properties: {
    resource: {
      id: 'golden'
      partitionKey: {
        paths: ['/agent_id']
        kind: 'Hash'
      }
    }
  }
}

// The change-feed trigger's leases: the host cannot create this container with an identity.
resource leasesContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'leases'
  properties: {
    resource: {
      id: 'leases'
      partitionKey: {
        paths: ['/id']
        kind: 'Hash'
      }
    }
  }
}

output name string = cosmos.name
output endpoint string = cosmos.properties.documentEndpoint
output databaseName string = database.name
