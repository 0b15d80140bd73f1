// The Function App (Linux, Flex Consumption, Python 3.11) that runs the loop's steps, with the app
// settings lightning.config.Settings reads (tests/unit/infra checks the two against each other).
//
// Flex Consumption takes the runtime from functionAppConfig.runtime and rejects the
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION app settings (it always runs ~4).

param planName string
param functionAppName string
param location string
param tags object = {}

@description('azd deploys the service of azure.yaml with this name to this app (tag azd-service-name).')
param serviceName string = 'loop'

@description('Enabled or Disabled; main.bicep refuses Disabled until VNet integration exists (README).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Maximum instances of the Flex Consumption app.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

// Identity and the resources it reaches (outputs of the other modules).
param identityId string
param identityClientId string
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
param datasetsContainerName string
param cosmosEndpoint string
param cosmosDatabaseName string
param serviceBusNamespace string
param queueMaxDeliveryCount int
param openAiAccountName string
param openAiEndpoint string
param openAiDeploymentName string
param openAiJudgeDeploymentName string
param appInsightsName string

// Rollout to the agents' AKS cluster; an empty API server turns the rollout off.
param k8sApiServer string
param k8sCaCertData string
param k8sNamespace string

// Loop thresholds (Settings fields; strings, as app settings are).
param datasetTimerSchedule string
param datasetMinEpisodes string
param datasetMinReward string
param datasetMinHoursBetween string
param fineTunePollSeconds string
param promotionTolerance string
param evaluator string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: publicNetworkAccess
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
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
      http20Enabled: true
      appSettings: [
        // Functions host and bindings: identity-based connections of the user-assigned identity.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'COSMOS_CONNECTION__accountEndpoint'
          value: cosmosEndpoint
        }
        {
          name: 'COSMOS_CONNECTION__credential'
          value: 'managedidentity'
        }
        {
          name: 'COSMOS_CONNECTION__clientId'
          value: identityClientId
        }
        {
          name: 'SERVICEBUS_CONNECTION__fullyQualifiedNamespace'
          value: serviceBusNamespace
        }
        {
          name: 'SERVICEBUS_CONNECTION__credential'
          value: 'managedidentity'
        }
        {
          name: 'SERVICEBUS_CONNECTION__clientId'
          value: identityClientId
        }
        {
          name: 'AZURE_CLIENT_ID' // DefaultAzureCredential picks the user-assigned identity
          value: identityClientId
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
          value: cosmosEndpoint
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
          value: serviceBusNamespace
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
          value: storageBlobEndpoint
        }
        {
          name: 'DATASETS_CONTAINER'
          value: datasetsContainerName
        }
        {
          name: 'AZURE_OPENAI_ENDPOINT'
          value: openAiEndpoint
        }
        {
          name: 'AZURE_OPENAI_DEPLOYMENT'
          value: openAiDeploymentName
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
          value: openAiAccountName
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
          name: 'ROLLOUT_ENABLED' // no cluster yet: promotions deploy the model, the registry records it
          value: empty(k8sApiServer) ? 'false' : 'true'
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

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
