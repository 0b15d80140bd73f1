// Lightning Loop on Azure: the Functions host of the loop and everything it talks to.
//
// Identity-based access only: one user-assigned managed identity runs the Function App and holds
// the data-plane roles below. No account key, SAS or key-bearing connection string is created or
// passed anywhere (Storage, Cosmos DB, Service Bus and Azure OpenAI all have local auth disabled).
// The Kubernetes cluster (AKS) that runs the agents is not deployed here: see README.md.
//
// Child resources are declared top-level with `parent:` (not nested): pycep-parser, which the unit
// test uses, keeps only the last nested child of a resource.
//
// Deploy:  az deployment group create -g <rg> -f infra/bicep/main.bicep -p infra/bicep/main.parameters.json

targetScope = 'resourceGroup'

// --- parameters -----------------------------------------------------------------------------------

@description('Short name used to derive every resource name.')
@minLength(3)
@maxLength(12)
param baseName string = 'lightning'

@description('Region of every resource except Azure OpenAI.')
param location string = resourceGroup().location

@description('Region of the Azure OpenAI account: pick one where fine-tuning of the base model is offered.')
param openAiLocation string = location

@description('Name of the base model deployment the agents call (AZURE_OPENAI_DEPLOYMENT).')
param openAiDeploymentName string = 'gpt-4o-mini'

@description('Version of the gpt-4o-mini base model.')
param openAiModelVersion string = '2024-07-18'

@description('SKU of the base model deployment.')
param openAiDeploymentSku string = 'GlobalStandard'

@description('Capacity of the base model deployment (thousands of tokens per minute).')
@minValue(1)
param openAiDeploymentCapacity int = 30

@description('Deployment of the task_adherence judge (AZURE_OPENAI_JUDGE_DEPLOYMENT); empty uses the rubric evaluator.')
param openAiJudgeDeploymentName string = ''

@description('API server URL of the existing AKS cluster that runs the agents, e.g. https://<cluster>.hcp.<region>.azmk8s.io:443.')
param k8sApiServer string

@description('Base64 PEM of the AKS cluster CA (certificate-authority-data of `az aks get-credentials`): the API server is served with it.')
param k8sCaCertData string

@description('Kubernetes namespace of the agents.')
param k8sNamespace string = 'mcp-agents'

@description('NCRONTAB (with seconds) of the dataset-building timer.')
param datasetTimerSchedule string = '0 */30 * * * *'

@description('Minimum labeled episodes before a dataset is built.')
param datasetMinEpisodes string = '50'

@description('Minimum reward of an episode that goes into a dataset.')
param datasetMinReward string = '0.7'

@description('Minimum hours between two datasets of one agent.')
param datasetMinHoursBetween string = '24'

@description('Seconds between two polls of a running fine-tuning job.')
param fineTunePollSeconds string = '60'

@description('How much worse than the active model a candidate may score and still be promoted.')
param promotionTolerance string = '0.02'

@description('Evaluator used by the change feed and label-batch.')
param evaluator string = 'task_adherence'

@description('Maximum instances of the Flex Consumption Function App.')
param functionMaximumInstanceCount int = 40

// --- names and constants --------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id, baseName)
var identityName = 'id-${baseName}-${suffix}'
var storageAccountName = take('st${toLower(replace(baseName, '-', ''))}${suffix}', 24)
var cosmosAccountName = 'cosmos-${baseName}-${suffix}'
var serviceBusNamespaceName = 'sb-${baseName}-${suffix}'
var openAiAccountName = 'oai-${baseName}-${suffix}'
var logAnalyticsName = 'log-${baseName}-${suffix}'
var appInsightsName = 'appi-${baseName}-${suffix}'
var planName = 'plan-${baseName}-${suffix}'
var functionAppName = 'func-${baseName}-${suffix}'

var cosmosDatabaseName = 'agents'
var datasetsContainerName = 'datasets'
var deploymentContainerName = 'function-app-package'
var queueMaxDeliveryCount = 5 // = Settings.queue_max_delivery_count (QUEUE_MAX_DELIVERY_COUNT)
var serviceBusFqdn = '${serviceBusNamespaceName}.servicebus.windows.net'

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  cognitiveServicesOpenAIContributor: 'a001fd3d-188f-4b5d-821b-7da978bf7442'
  cognitiveServicesContributor: '25fbc0a9-bd7f-42a3-aa2a-32b5e7bcf6ed'
}
var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002' // Cosmos DB Built-in Data Contributor

// --- identity -------------------------------------------------------------------------------------

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
}

// --- storage: Functions host, deployment package, datasets ----------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource datasetsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: datasetsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// --- Cosmos DB: database `agents` -----------------------------------------------------------------

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: cosmosAccountName
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
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

resource cosmosDatabase 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: cosmos
  name: cosmosDatabaseName
  properties: {
    resource: {
      id: cosmosDatabaseName
    }
  }
}

resource episodesContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: cosmosDatabase
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

resource datasetsManifestContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: cosmosDatabase
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
  parent: cosmosDatabase
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
  parent: cosmosDatabase
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

// The change-feed trigger's leases: the host cannot create this container with an identity.
resource leasesContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: cosmosDatabase
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

resource cosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmos.id, identity.id, cosmosDataContributorRoleId)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
    principalId: identity.properties.principalId
    scope: cosmos.id
  }
}

// --- Service Bus: the fine-tuning queues ----------------------------------------------------------

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: serviceBusNamespaceName
  location: location
  sku: {
    name: 'Standard' // duplicate detection needs Standard or Premium
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

// Every message carries a deterministic id; duplicate detection drops the repeats.
resource fineTuneJobsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: serviceBus
  name: 'fine-tune-jobs'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    lockDuration: 'PT5M'
    maxDeliveryCount: queueMaxDeliveryCount
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
    maxDeliveryCount: queueMaxDeliveryCount
    deadLetteringOnMessageExpiration: true
  }
}

// --- Azure OpenAI ---------------------------------------------------------------------------------

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: openAiAccountName
  location: openAiLocation
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: openAiAccountName
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource openAiBaseDeployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: openAi
  name: openAiDeploymentName
  sku: {
    name: openAiDeploymentSku
    capacity: openAiDeploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: 'gpt-4o-mini'
      version: openAiModelVersion
    }
  }
}

// --- monitoring -----------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
  }
}

// --- role assignments of the Function App's identity ----------------------------------------------

// Host storage (timers, host locks) needs Blob Data Owner; it also covers the datasets and the
// deployment package containers (Blob Data Contributor would do for those alone).
resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceBusDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, identity.id, roles.serviceBusDataSender)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceBusDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, identity.id, roles.serviceBusDataReceiver)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource openAiContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(openAi.id, identity.id, roles.cognitiveServicesOpenAIContributor)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Management plane: deploying fine-tuned models on the account.
resource cognitiveServicesContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(openAi.id, identity.id, roles.cognitiveServicesContributor)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- Function App (Linux, Flex Consumption, Python 3.11) ------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Flex Consumption takes the runtime from functionAppConfig.runtime and rejects the
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION app settings (it always runs ~4).
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  dependsOn: [
    deploymentContainer
    storageBlobDataOwner
  ]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: functionMaximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // Functions host and bindings: identity-based connections of the user-assigned identity.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'COSMOS_CONNECTION__accountEndpoint'
          value: cosmos.properties.documentEndpoint
        }
        {
          name: 'COSMOS_CONNECTION__credential'
          value: 'managedidentity'
        }
        {
          name: 'COSMOS_CONNECTION__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'SERVICEBUS_CONNECTION__fullyQualifiedNamespace'
          value: serviceBusFqdn
        }
        {
          name: 'SERVICEBUS_CONNECTION__credential'
          value: 'managedidentity'
        }
        {
          name: 'SERVICEBUS_CONNECTION__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'AZURE_CLIENT_ID' // DefaultAzureCredential picks the user-assigned identity
          value: identity.properties.clientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        // lightning.config.Settings (field names upper-cased).
        {
          name: 'DATASET_TIMER_SCHEDULE'
          value: datasetTimerSchedule
        }
        {
          name: 'LIGHTNING_HOME'
          value: '/tmp/lightning'
        }
        {
          name: 'LIGHTNING_STORE'
          value: 'cosmos'
        }
        {
          name: 'COSMOS_ENDPOINT'
          value: cosmos.properties.documentEndpoint
        }
        {
          name: 'COSMOS_DATABASE'
          value: cosmosDatabaseName
        }
        {
          name: 'LIGHTNING_QUEUE'
          value: 'servicebus'
        }
        {
          name: 'SERVICEBUS_NAMESPACE'
          value: serviceBusFqdn
        }
        {
          name: 'QUEUE_MAX_DELIVERY_COUNT'
          value: string(queueMaxDeliveryCount)
        }
        {
          name: 'LIGHTNING_BLOB'
          value: 'azure'
        }
        {
          name: 'AZURE_STORAGE_ACCOUNT_URL'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'DATASETS_CONTAINER'
          value: datasetsContainerName
        }
        {
          name: 'AZURE_OPENAI_ENDPOINT'
          value: openAi.properties.endpoint
        }
        {
          name: 'AZURE_OPENAI_DEPLOYMENT'
          value: openAiBaseDeployment.name
        }
        {
          name: 'AZURE_OPENAI_JUDGE_DEPLOYMENT'
          value: openAiJudgeDeploymentName
        }
        {
          name: 'AZURE_SUBSCRIPTION_ID'
          value: subscription().subscriptionId
        }
        {
          name: 'AZURE_RESOURCE_GROUP'
          value: resourceGroup().name
        }
        {
          name: 'AZURE_OPENAI_ACCOUNT'
          value: openAi.name
        }
        {
          name: 'K8S_API_SERVER'
          value: k8sApiServer
        }
        {
          name: 'K8S_CA_CERT_DATA'
          value: k8sCaCertData
        }
        {
          name: 'K8S_USE_AKS_TOKEN'
          value: 'true'
        }
        {
          name: 'K8S_NAMESPACE'
          value: k8sNamespace
        }
        {
          name: 'DATASET_MIN_EPISODES'
          value: datasetMinEpisodes
        }
        {
          name: 'DATASET_MIN_REWARD'
          value: datasetMinReward
        }
        {
          name: 'DATASET_MIN_HOURS_BETWEEN'
          value: datasetMinHoursBetween
        }
        {
          name: 'FINE_TUNE_POLL_SECONDS'
          value: fineTunePollSeconds
        }
        {
          name: 'PROMOTION_TOLERANCE'
          value: promotionTolerance
        }
        {
          name: 'LIGHTNING_EVALUATOR'
          value: evaluator
        }
      ]
    }
  }
}

// --- outputs --------------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output cosmosEndpoint string = cosmos.properties.documentEndpoint
output serviceBusFqdn string = serviceBusFqdn
output openAiEndpoint string = openAi.properties.endpoint
output identityClientId string = identity.properties.clientId
output storageAccountName string = storage.name
